use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", primary_key)]
struct User {
    id: i32,
}

fn main() {}
