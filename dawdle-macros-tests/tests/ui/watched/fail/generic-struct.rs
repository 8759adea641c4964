use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "things")]
struct Thing<T> {
    id: i32,
    value: T,
}

fn main() {}
