use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i32,
    name: String,
    #[dawdle(rename = "name")]
    display_name: String,
}

fn main() {}
