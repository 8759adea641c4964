use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "places")]
struct Place {
    id: i32,
    #[dawdle(sql = "ST_AsGeoJSON($1)")]
    location: Option<String>,
}

fn main() {
    let column = Place::TABLE.column("location").unwrap();
    assert_eq!(column.sql, Some("ST_AsGeoJSON($1)"));
}
