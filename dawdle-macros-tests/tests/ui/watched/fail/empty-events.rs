use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", events())]
struct User {
    id: i32,
}

fn main() {}
