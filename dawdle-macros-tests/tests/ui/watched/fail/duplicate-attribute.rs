use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
#[dawdle(table = "people")]
struct User {
    id: i32,
}

fn main() {}
