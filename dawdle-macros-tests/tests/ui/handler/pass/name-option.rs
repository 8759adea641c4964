use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

// A stable name survives moving the function to another module.
#[dawdle::handler(name = "send welcome mail")]
async fn welcome(_event: Insert<User>) {}

fn main() {
    let [handler] = dawdle::handler::handlers()[..] else {
        panic!("expected one handler");
    };
    assert_eq!(handler.name, "send welcome mail");
}
