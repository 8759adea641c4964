use dawdle::{Delete, Watched};

#[derive(Watched)]
#[dawdle(schema = "app", table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn farewell(event: Delete<User>) -> Result<(), String> {
    if event.old.id < 0 {
        return Err(format!("user {} cannot exist", event.old.id));
    }
    Ok(())
}

fn main() {
    let [handler] = dawdle::handler::handlers()[..] else {
        panic!("expected one handler");
    };
    assert_eq!((handler.table().unwrap().schema, handler.table().unwrap().name), ("app", "users"));
    assert_eq!(handler.actions(), [dawdle::Action::Delete]);
}
