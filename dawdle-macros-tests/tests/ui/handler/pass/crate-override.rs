// The dawdle crate under another name, as when a crate re-exports it.
extern crate dawdle as renamed;

use renamed::{Insert, Watched};

#[derive(Watched)]
#[dawdle(crate = "renamed", table = "users")]
struct User {
    id: i64,
}

#[renamed::handler(crate = "renamed", name = "welcome")]
async fn welcome(_event: Insert<User>) {}

fn main() {
    assert_eq!(renamed::handler::handlers()[0].name, "welcome");
}
