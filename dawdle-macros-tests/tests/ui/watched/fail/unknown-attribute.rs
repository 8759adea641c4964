use dawdle::Watched;

#[derive(Watched)]
#[dawdle(tabel = "users")]
struct User {
    id: i32,
}

fn main() {}
