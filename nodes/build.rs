//! Lays out the release binary's code hot first: the functions a settled node runs
//! (`hot-symbols.txt`) together at the start of `.text` (`build-support/hot_layout.rs`).

#[path = "../build-support/hot_layout.rs"]
mod hot_layout;

fn main() {
    hot_layout::link_hot_first("swarm-node");
}
