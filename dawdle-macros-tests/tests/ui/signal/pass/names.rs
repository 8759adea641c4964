use dawdle::Signal;
use serde::{Deserialize, Serialize};

mod billing {
    #[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
    pub struct InvoiceDue {
        pub invoice: i64,
    }
}

#[derive(Serialize, Deserialize, Signal)]
#[dawdle(name = "billing.invoice_paid")]
struct InvoicePaid {
    invoice: i64,
}

#[derive(Serialize, Deserialize, Signal)]
#[dawdle(crate = "::dawdle")]
enum Mood {
    Happy,
    Grumpy { why: String },
}

#[dawdle::handler]
async fn paid(event: dawdle::Signaled<InvoicePaid>) {
    let _: i64 = event.payload.invoice;
}

fn main() {
    // The default name is the type's path.
    let path = |name: &str| format!("{}::{name}", module_path!());
    assert_eq!(<billing::InvoiceDue as Signal>::NAME, path("billing::InvoiceDue"));
    assert_eq!(<InvoicePaid as Signal>::NAME, "billing.invoice_paid");
    assert_eq!(<InvoicePaid as Signal>::SIGNAL.type_name, path("InvoicePaid"));
    assert_eq!(<Mood as Signal>::NAME, path("Mood"));
    let names: Vec<&str> = dawdle::signal::signals().iter().map(|s| s.name).collect();
    assert_eq!(names, ["billing.invoice_paid".to_owned(), path("Mood"), path("billing::InvoiceDue")]);
    let _ = (Mood::Happy, Mood::Grumpy { why: String::new() });
}
