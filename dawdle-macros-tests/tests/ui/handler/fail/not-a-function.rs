#[dawdle::handler]
struct Welcome;

fn main() {}
