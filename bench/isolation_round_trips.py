"""How many AWS round trips isolation needs before every interface is quarantined and
verified, measured on moto with a fixed latency injected into every call.

    python bench/isolation_round_trips.py [--latency 0.2] [--interfaces 2 4 8]

Target (issue 2): with the groups already in the VPC, quarantined within 4 round trips of
the click and verified within 5. The design aims at 3 and 4.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import boto3
from moto import mock_aws
from moto.ec2.models.elastic_network_interfaces import NetworkInterface

from aws.isolation import isolate
from aws.session import AwsFactory, CallLog

AMI = "ami-12c6146b"


def scene(ec2: Any, interfaces: int) -> tuple[str, str, list[str]]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    enis = [{"DeviceIndex": i, "SubnetId": subnet, "Groups": [sg]} for i in range(interfaces)]
    instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.4xlarge",
                                 NetworkInterfaces=enis)["Instances"][0]
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])
    eni_ids = [e["NetworkInterfaceId"]
               for e in described["Reservations"][0]["Instances"][0]["NetworkInterfaces"]]
    return vpc, instance["InstanceId"], eni_ids


def measure(interfaces: int, latency: float) -> tuple[float, float, int]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc, instance_id, eni_ids = scene(ec2, interfaces)
    fast = AwsFactory(default_region="us-east-1").for_region()
    report = isolate(fast, CallLog(), instance_id=instance_id, incident_id="IR-0", vpc_id=vpc)
    for eni, before in zip(eni_ids, [i.groups_before for i in report.interfaces], strict=True):
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=before)

    session = boto3.session.Session()
    session.events.register("before-call", lambda **_: time.sleep(latency))
    slow = AwsFactory(default_region="us-east-1", session=session).for_region()
    slow.warm()
    log = CallLog()
    start = time.monotonic()
    report = isolate(slow, log, instance_id=instance_id, incident_id="IR-1", vpc_id=vpc)
    assert report.contained, report.to_dict()
    ends = {op: max(r.started + r.seconds - start for r in log.records if r.operation == op)
            for op in ("modify_network_interface_attribute", "describe_network_interfaces")}
    return (ends["modify_network_interface_attribute"] / latency,
            ends["describe_network_interfaces"] / latency, len(log.records))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--interfaces", type=int, nargs="+", default=[2, 4, 8])
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    NetworkInterface.group_set = property(  # type: ignore[assignment,method-assign]
        lambda self: self._group_set)  # AWS reports an interface's own groups
    print(f"latency per call {args.latency * 1000:.0f} ms")
    print("interfaces  quarantined(RT)  verified(RT)  calls")
    for count in args.interfaces:
        with mock_aws():
            quarantined, verified, calls = measure(count, args.latency)
        print(f"{count:>10}  {quarantined:>15.2f}  {verified:>12.2f}  {calls:>5}")


if __name__ == "__main__":
    main()
