use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table)]
struct User {
    id: i32,
}

fn main() {}
