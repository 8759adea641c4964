use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i32,
    a_field_name_that_is_longer_than_the_sixty_three_bytes_postgres_keeps: String,
}

fn main() {}
