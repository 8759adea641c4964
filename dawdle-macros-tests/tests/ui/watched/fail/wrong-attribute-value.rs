use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = 5)]
struct User {
    id: i32,
}

fn main() {}
