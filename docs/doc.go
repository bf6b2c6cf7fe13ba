// Package docs holds the project's design documents and no code. Its
// tests keep docs/ARCHITECTURE.md true to the tree: the layer order it
// states is the one the imports follow, every function, type and method it
// names exists under that name, and every package's doc points to it.
package docs
