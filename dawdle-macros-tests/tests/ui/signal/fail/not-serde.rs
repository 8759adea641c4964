#[derive(dawdle::Signal)]
struct Plain {
    n: i64,
}

fn main() {}
