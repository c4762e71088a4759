"""ECS: task definitions that use images, and services running them on Fargate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scenarios.clients import ClientFactory


@dataclass(frozen=True)
class Cluster:
    """An ECS cluster and the network its Fargate services run in."""

    name: str
    subnet: str
    security_group: str


def register_task_definition(
    ecs: Any, family: str, images: Sequence[str], *, memory: int = 128, container: str = "c"
) -> str:
    """Register the next revision of ``family``, one container per image (``c0``, ``c1``, ...);
    returns its ARN."""
    answer = ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {"name": f"{container}{number}", "image": image, "memory": memory}
            for number, image in enumerate(images)
        ],
    )
    arn: str = answer["taskDefinition"]["taskDefinitionArn"]
    return arn


def cluster_with_network(
    clients: ClientFactory, name: str = "main", *, cidr: str = "10.0.0.0/16"
) -> Cluster:
    """A VPC with one subnet and a security group, and the cluster ``name``. moto (5.2) wants a
    subnet and security group it knows in ``awsvpcConfiguration``. Creating a cluster that
    exists replaces it in moto, services and all: make it once per account."""
    ec2 = clients("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet_cidr = cidr.rsplit(".", 2)[0] + ".1.0/24"
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr)["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{name}-svc", Description=name, VpcId=vpc)[
        "GroupId"
    ]
    clients("ecs").create_cluster(clusterName=name)
    return Cluster(name, subnet, group)


def fargate_service(ecs: Any, cluster: Cluster, name: str, task_definition: str) -> str:
    """A Fargate service of ``task_definition`` (a full ARN: moto wants one) with no task
    running; returns its ARN."""
    answer = ecs.create_service(
        cluster=cluster.name,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=0,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [cluster.subnet],
                "securityGroups": [cluster.security_group],
            }
        },
    )
    arn: str = answer["service"]["serviceArn"]
    return arn
