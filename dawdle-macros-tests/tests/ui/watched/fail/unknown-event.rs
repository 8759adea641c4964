use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users", events(insert, upsert))]
struct User {
    id: i32,
}

fn main() {}
