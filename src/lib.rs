pub use spillway_pool as pool;
