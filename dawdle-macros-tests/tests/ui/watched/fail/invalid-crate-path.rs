use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", crate = "not a path")]
struct User {
    id: i32,
}

fn main() {}
