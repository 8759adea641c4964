use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", events(insert, update, insert))]
struct User {
    id: i32,
}

fn main() {}
