#[dawdle::handler]
async fn welcome() {}

fn main() {}
