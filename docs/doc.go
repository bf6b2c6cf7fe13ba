// Package docs holds the project's design documents and no code. Its
// tests keep ARCHITECTURE.md true to the tree: the layer order it states is
// the one the imports follow, and every function, type and method it names
// exists under that name.
package docs
