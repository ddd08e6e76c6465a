"""The demo's AWS account, seeded in the emulator: a small web estate with one compromised
instance (two interfaces, two volumes, an instance role, SSH open to the world) and a few
neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

REGION = "us-east-1"


@dataclass(frozen=True)
class DemoWorld:
    account_id: str
    vpc_id: str
    instance_id: str
    neighbours: dict[str, str]  # name -> instance id
    golden_ami: str
    bucket: str


def _instance(ec2: Any, *, name: str, image: str, interfaces: list[dict[str, Any]],
              profile: str = "", volumes: int = 1) -> str:
    devices = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8,
                                                   "DeleteOnTermination": True}}]
    if volumes > 1:
        devices.append({"DeviceName": "/dev/xvdf", "Ebs": {"VolumeSize": 50,
                                                           "DeleteOnTermination": True}})
    extra: dict[str, Any] = {"IamInstanceProfile": {"Name": profile}} if profile else {}
    return str(ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", KeyName="deploy-key",
        NetworkInterfaces=interfaces, BlockDeviceMappings=devices,
        MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": name}, {"Key": "app", "Value": "shop"}]}], **extra,
    )["Instances"][0]["InstanceId"])


def seed() -> DemoWorld:
    """Create the estate in the (already started) emulator and return its ids."""
    ec2 = boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    images = [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"][:2]]
    image, golden = images[0], images[-1]  # the estate's AMI, and a clean golden one
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24",
                               AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24",
                                AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="shop-web", Description="web tier",
                                    VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "temporary debug access"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    app = ec2.create_security_group(GroupName="shop-app", Description="app tier",
                                    VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=app, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": web}]}])
    db = ec2.create_security_group(GroupName="shop-db", Description="database",
                                   VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": app}]}])
    ec2.create_key_pair(KeyName="deploy-key")
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
             '{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
    iam.create_role(RoleName="shop-web-role", AssumeRolePolicyDocument=trust)
    iam.create_instance_profile(InstanceProfileName="shop-web-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="shop-web-profile",
                                     RoleName="shop-web-role")
    compromised = _instance(ec2, name="shop-web-1", image=image, profile="shop-web-profile",
                            volumes=2, interfaces=[
        {"DeviceIndex": 0, "SubnetId": public, "Groups": [web], "DeleteOnTermination": True,
         "AssociatePublicIpAddress": True},
        {"DeviceIndex": 1, "SubnetId": private, "Groups": [app], "DeleteOnTermination": True},
    ])
    neighbours = {
        "shop-web-2": _instance(ec2, name="shop-web-2", image=image, interfaces=[
            {"DeviceIndex": 0, "SubnetId": public, "Groups": [web]}]),
        "shop-app-1": _instance(ec2, name="shop-app-1", image=image, interfaces=[
            {"DeviceIndex": 0, "SubnetId": private, "Groups": [app]}]),
        "shop-db-1": _instance(ec2, name="shop-db-1", image=image, interfaces=[
            {"DeviceIndex": 0, "SubnetId": private, "Groups": [db]}]),
    }
    elbv2 = boto3.client("elbv2", region_name=REGION)
    group = elbv2.create_target_group(Name="shop-web", Protocol="HTTPS", Port=443, VpcId=vpc,
                                      TargetType="instance")["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[
        {"Id": compromised, "Port": 443}, {"Id": neighbours["shop-web-2"], "Port": 443}])
    bucket = f"irbot-evidence-{account}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    return DemoWorld(account_id=account, vpc_id=vpc, instance_id=compromised,
                     neighbours=neighbours, golden_ami=golden, bucket=bucket)


def finding(world: DemoWorld, *, finding_id: str, kind: str, severity: float, title: str,
            description: str, action: dict[str, Any], minutes_ago: int) -> dict[str, Any]:
    """Return a GuardDuty finding about the compromised instance, as EventBridge sends it."""
    now = datetime.now(UTC)
    first = (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    last = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "version": "0", "id": f"evt-{finding_id}", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": world.account_id, "region": REGION,
        "time": last, "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": world.account_id, "region": REGION,
            "partition": "aws", "id": finding_id, "type": kind, "severity": severity,
            "title": title, "description": description, "createdAt": first,
            "updatedAt": last,
            "arn": f"arn:aws:guardduty:{REGION}:{world.account_id}:detector/demo/finding/"
                   f"{finding_id}",
            "resource": {"resourceType": "Instance", "instanceDetails": {
                "instanceId": world.instance_id, "instanceType": "t3.small",
                "instanceState": "running"}},
            "service": {"serviceName": "guardduty", "detectorId": "demo", "action": action,
                        "archived": False, "count": 3, "eventFirstSeen": first,
                        "eventLastSeen": last, "resourceRole": "ACTOR",
                        "additionalInfo": {"sample": False}},
        },
    }


def c2_finding(world: DemoWorld) -> dict[str, Any]:
    """The finding that starts the demo: the web server asks DNS for a C&C domain."""
    return finding(
        world, finding_id="demo-c2-dns", kind="Backdoor:EC2/C&CActivity.B!DNS", severity=8.0,
        title=f"Command and Control server domain name queried by EC2 instance "
              f"{world.instance_id}.",
        description=f"EC2 instance {world.instance_id} is querying a domain name associated "
                    "with a known Command & Control server.",
        action={"actionType": "DNS_REQUEST", "dnsRequestAction": {
            "domain": "beacon.c2-demo.example", "protocol": "UDP", "blocked": False}},
        minutes_ago=14)


def ssh_finding(world: DemoWorld) -> dict[str, Any]:
    """A second finding a minute later: SSH brute force against the same instance."""
    return finding(
        world, finding_id="demo-ssh-brute", kind="UnauthorizedAccess:EC2/SSHBruteForce",
        severity=5.0, title=f"203.0.113.77 is performing SSH brute force attacks against "
                            f"{world.instance_id}.",
        description="An IP address is trying to guess SSH passwords on the instance.",
        action={"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
            "connectionDirection": "INBOUND", "protocol": "TCP", "blocked": False,
            "remoteIpDetails": {"ipAddressV4": "203.0.113.77",
                                "organization": {"asnOrg": "Example Hosting"},
                                "country": {"countryName": "Netherlands"}},
            "remotePortDetails": {"port": 51514}, "localPortDetails": {"port": 22}}},
        minutes_ago=30)
