use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User;

fn main() {}
