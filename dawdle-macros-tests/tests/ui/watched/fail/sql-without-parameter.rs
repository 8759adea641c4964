use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "places")]
struct Place {
    id: i32,
    #[dawdle(sql = "ST_AsGeoJSON(location)")]
    location: String,
}

fn main() {}
