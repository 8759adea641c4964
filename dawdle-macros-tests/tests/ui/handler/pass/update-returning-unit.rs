use dawdle::{Update, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

#[dawdle::handler]
async fn renamed(event: Update<User>) {
    let _ = (event.old.name, event.new.name, event.meta.id);
}

fn main() {
    let [handler] = dawdle::handler::handlers()[..] else {
        panic!("expected one handler");
    };
    assert_eq!(handler.actions(), [dawdle::Action::Update]);
}
