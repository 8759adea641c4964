use dawdle::Watched;

struct Point {
    x: f64,
    y: f64,
}

#[derive(Watched)]
#[dawdle(table = "places")]
struct Place {
    id: i32,
    location: Point,
}

fn main() {}
