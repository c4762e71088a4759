"""AWS scenarios shared by the tests, the sandbox of ``make demo`` and the benches.

Each builder creates one recognisable piece of an AWS set-up through boto3 clients it is given
and returns a small dataclass (or an id) describing what it made:

- ``scenarios.ecr``: repositories, images pushed with the digest computed from their manifest
  (moto does not compute it), image indexes;
- ``scenarios.ecs``: task definitions, a cluster with the network a Fargate service needs,
  services;
- ``scenarios.lambdas``: the breaker's world (queue, function, enabled SQS mapping, alarm on
  the function's errors) and image functions;
- ``scenarios.clients``: client factories (a function from service name to client) for an
  account of the console, a sandbox account, or a moto server at an endpoint.

The builders work against moto in the test process, moto's server, or anything else that
speaks the AWS API. They import nothing but boto3 and the standard library: this package ships
in the console's image (the sandbox uses it), where moto and pytest are not installed.

Only the tests and the benches use the rest:

- ``scenarios.moto_patches``: every change this repository makes to moto's behaviour, each with
  what it works around and the moto version that needs it;
- ``scenarios.moto_server``: moto's server in a thread of this process;
- ``scenarios.fake_aws``: an in-process fake of the cleanup's AWS gateway for property tests and
  the scale bench.
"""
