struct Client;

impl Client {
    #[klaw::task]
    async fn fetch(&self, id: u32) -> u32 {
        id
    }
}

fn main() {}
