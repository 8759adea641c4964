use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    user_id: i32,
    name: String,
}

fn main() {}
