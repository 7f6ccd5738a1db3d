// espeak-rs builds a vendored espeak-ng whose CMake uses Debian's libsonic (instead of cloning it from
// the network) when libsonic-dev is installed; the static espeak-ng then needs sonic at link time.
fn main() {
    println!("cargo:rustc-link-lib=sonic");
}
