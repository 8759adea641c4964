// The function stays an ordinary `async fn`, callable and testable as written.
use dawdle::{Action, Insert, Meta, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

#[dawdle::handler]
async fn welcome(event: Insert<User>) -> Result<(), String> {
    if event.new.name.is_empty() {
        return Err(format!("user {} has no name", event.new.id));
    }
    Ok(())
}

fn main() {
    let event = |name: &str| Insert {
        new: User { id: 1, name: name.to_owned() },
        meta: Meta {
            id: 7,
            source: None,
            schema: "public".to_owned(),
            table: "users".to_owned(),
            action: Action::Insert,
            captured_at: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
            txid: "1".to_owned(),
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(welcome(event("Ada"))), Ok(()));
    assert_eq!(runtime.block_on(welcome(event(""))), Err("user 1 has no name".to_owned()));
}
