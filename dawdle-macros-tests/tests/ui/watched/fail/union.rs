use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "numbers")]
union Number {
    int: i64,
    float: f64,
}

fn main() {}
