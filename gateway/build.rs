//! The gateway embeds the built dashboard (`admin-ui/dist`, committed) with `include_dir`.
//! Files that change there are tracked through `include_bytes!`; this makes a file added or
//! removed there rebuild the gateway too.

fn main() {
    println!("cargo:rerun-if-changed=../admin-ui/dist");
}
