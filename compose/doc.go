// Package compose holds the offline checks of the Docker Compose stacks in
// this folder (tyk/, kong/, envoy/, nginx/, and what they share in common/):
// the compose files parse, what they reference exists, images are pinned,
// the bffgate configs they mount load, the proxies' configs pass their own
// checks, and the Keycloak realm declares the URIs the configs use. Docker
// cannot run where the tests run; see README.md for what only these checks
// exercise.
package compose
