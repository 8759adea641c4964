use dawdle::Watched;

#[derive(Watched)]
struct User {
    id: i32,
}

fn main() {}
