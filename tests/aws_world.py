"""Build the AWS scene the tests act on: a VPC, a compromised instance with two network
interfaces and two volumes, in an Auto Scaling group and a target group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AMI = "ami-12c6146b"  # moto's fixed AMI: describe_images would take seconds


@dataclass(frozen=True)
class World:
    vpc_id: str
    subnet_id: str
    web_sg: str
    admin_sg: str
    instance_id: str
    eni_ids: list[str]
    volume_ids: list[str]
    asg_name: str
    target_group_arn: str


def build_world(ec2: Any, autoscaling: Any, elbv2: Any, *, name: str = "web-1") -> World:
    """Create the scene and return its ids."""
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24",
                                  AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    web_sg = ec2.create_security_group(GroupName="web", Description="web",
                                       VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ])
    admin_sg = ec2.create_security_group(GroupName="admin", Description="admin",
                                         VpcId=vpc_id)["GroupId"]
    instance = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [web_sg],
             "DeleteOnTermination": True},
            {"DeviceIndex": 1, "SubnetId": subnet_id, "Groups": [admin_sg, web_sg],
             "DeleteOnTermination": True},
        ],
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}},
        ],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name",
                                                                   "Value": name}]}],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    eni_ids = [e["NetworkInterfaceId"] for e in sorted(
        described["NetworkInterfaces"], key=lambda e: e["Attachment"]["DeviceIndex"])]
    volume_ids = [m["Ebs"]["VolumeId"] for m in described["BlockDeviceMappings"]]

    asg_name = f"{name}-asg"
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId=AMI, InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg_name, LaunchConfigurationName=f"{name}-lc",
        MinSize=0, MaxSize=3, DesiredCapacity=0, VPCZoneIdentifier=subnet_id)
    autoscaling.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName=asg_name)

    tg_arn = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80,
                                       VpcId=vpc_id, TargetType="instance"
                                       )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": instance_id, "Port": 80}])
    return World(vpc_id=vpc_id, subnet_id=subnet_id, web_sg=web_sg, admin_sg=admin_sg,
                 instance_id=instance_id, eni_ids=eni_ids, volume_ids=volume_ids,
                 asg_name=asg_name, target_group_arn=tg_arn)


def interface_groups(ec2: Any, eni_id: str) -> list[str]:
    """Return the groups AWS reports for an interface."""
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return sorted(g["GroupId"] for g in eni["Groups"])


def group_by_name(ec2: Any, vpc_id: str, name: str) -> dict[str, Any]:
    """Return the described security group `name` in the VPC."""
    groups = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}
    ])["SecurityGroups"]
    assert len(groups) == 1, groups
    return dict(groups[0])
