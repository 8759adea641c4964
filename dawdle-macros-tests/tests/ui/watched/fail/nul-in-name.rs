use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i32,
    #[dawdle(rename = "na\0me")]
    name: String,
}

fn main() {}
