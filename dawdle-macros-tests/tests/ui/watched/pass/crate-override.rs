// The dawdle crate under another name, as when a crate re-exports it.
extern crate dawdle as renamed;

use renamed::Watched;

#[derive(Watched)]
#[dawdle(crate = "renamed", table = "users")]
pub struct User {
    pub id: i32,
}

fn main() {
    assert_eq!(User::TABLE.name, "users");
}
