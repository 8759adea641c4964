//! Two `Signal` types that claim one wire name: the runtime refuses to
//! build, naming both (a test binary of its own: every runtime built here
//! would be refused).

use dawdle::{BuildError, MemoryQueue, Runtime};
use serde::{Deserialize, Serialize};

mod billing {
    #[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
    #[dawdle(name = "invoice.due")]
    pub struct InvoiceDue {
        pub invoice: i64,
    }
}

#[derive(Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "invoice.due")]
struct AlsoInvoiceDue {
    number: String,
}

#[dawdle::handler]
async fn due(_: dawdle::Signaled<AlsoInvoiceDue>) {}

#[test]
fn two_types_with_one_name_are_refused_naming_both() {
    let error = Runtime::builder()
        .queue(MemoryQueue::new())
        .listen()
        .build()
        .unwrap_err();
    assert!(
        matches!(error, BuildError::DuplicateSignals(_)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(
            r#""invoice.due" (signal_names::AlsoInvoiceDue, signal_names::billing::InvoiceDue)"#
        ),
        "{message}"
    );
    let _ = billing::InvoiceDue { invoice: 1 };
}
