use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", schema = "")]
struct User {
    id: i32,
}

fn main() {}
