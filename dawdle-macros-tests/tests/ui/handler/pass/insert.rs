use std::fmt;

use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

#[derive(Debug)]
struct NoName(i64);

impl fmt::Display for NoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user {} has no name", self.0)
    }
}

#[dawdle::handler]
async fn welcome(event: Insert<User>) -> Result<(), NoName> {
    if event.new.name.is_empty() {
        return Err(NoName(event.new.id));
    }
    Ok(())
}

fn main() {
    let [handler] = dawdle::handler::handlers()[..] else {
        panic!("expected one handler");
    };
    assert!(handler.name.ends_with("::welcome"), "{}", handler.name);
    assert_eq!(handler.table().unwrap().name, "users");
    assert_eq!(handler.actions(), [dawdle::Action::Insert]);
}
