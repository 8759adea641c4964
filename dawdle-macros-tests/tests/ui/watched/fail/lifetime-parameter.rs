use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User<'a> {
    id: i32,
    name: &'a str,
}

fn main() {}
