// Package docs holds the project's documentation (the Markdown files in
// this folder) and its test: every relative link and every repository path
// that README.md and docs/*.md name must exist.
package docs
