# gitsync-operator. `make test` does every set-up step itself, from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM := npm --loglevel=error

.PHONY: help deps tools build crds lint unit test demo image chart bench compose-schema clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# A changed hack/patch-deps.mjs reinstalls too: its fixes apply to the packages as published.
node_modules/.installed: package.json package-lock.json hack/patch-deps.mjs
	$(NPM) ci
	@touch $@

deps: node_modules/.installed ## Install npm dependencies (Node.js 24 comes with them)

tools: ## Build the e2e servers from their Go modules, once per machine
	@bash hack/tools.sh >/dev/null

build: deps ## Compile TypeScript into dist/
	$(NPM) run build

crds: build ## Regenerate deploy/crds from the zod schemas
	$(NPM) run gen:crds

lint: build ## ESLint (typed rules) and the CRD staleness check
	$(NPM) run lint
	$(NPM) run check:crds

unit: build ## Unit tests only (no servers)
	$(NPM) run test:unit

test: build tools lint ## Everything: lint, unit and e2e tests against real servers
	@bash hack/deps.sh
	$(NPM) test

demo: build tools ## A real local cluster with the operator installed by its chart (OUT_OF_CLUSTER=1: in this terminal)
	@bash hack/deps.sh
	OUT_OF_CLUSTER=$(OUT_OF_CLUSTER) $(NPM) run demo

image: build ## The operator's image as an OCI archive, without Docker (gitsync-operator.oci.tar)
	$(NPM) run image

chart: tools ## Package the chart into dist/chart (then: helm push dist/chart/*.tgz oci://REGISTRY/charts)
	@mkdir -p dist/chart
	"$$(bash hack/tools.sh | sed -n 's/^helm=//p')" package deploy/helm/gitsync-operator --destination dist/chart

bench: build tools ## Benchmarks against native git (prints ratios)
	$(NPM) run bench:git
	$(NPM) run bench:handshake
	$(NPM) run bench:backup
	$(NPM) run bench:compose
	$(NPM) run bench:partition
	bash hack/tools.sh --bench >/dev/null
	$(NPM) run bench:fleet

COMPOSE_GO := github.com/compose-spec/compose-go/v2@v2.16.2
compose-schema: ## Refresh src/compose/compose-spec.json from the compose-spec project's Go module
	cp "$$(go mod download -json $(COMPOSE_GO) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')/schema/compose-spec.json" src/compose/compose-spec.json
	chmod 644 src/compose/compose-spec.json

clean: ## Remove build output (the tool cache outside the checkout stays)
	rm -rf dist
