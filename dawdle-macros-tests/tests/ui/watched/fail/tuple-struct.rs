use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User(i32, String);

fn main() {}
