use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "a_table_name_that_is_longer_than_the_sixty_three_bytes_postgres_keeps")]
struct User {
    id: i32,
}

fn main() {}
