#!/usr/bin/python3
# boto3 (Debian's python3-boto3) against kilnd's Lambda control plane: create_function, the
# function_active_v2 waiter, get_function, list_functions pages (the SDK's paginator),
# update_function_configuration, delete_function, and Lambda's errors as the SDK's exception
# classes. With a TOKEN (kilnd --tenants): the tenant's bearer token instead of SigV4, its own
# namespace and account, and no access without it.
# Run by lambda_clients_test.sh: lambda_boto3_check.py ENDPOINT IMAGE_URI [TOKEN].
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

ROLE = "arn:aws:iam::000000000000:role/x"


def make_client(endpoint, token=None):
    client = boto3.client(
        "lambda", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="AKIAKILNTEST00000000", aws_secret_access_key="kiln-test-secret",
        config=Config(retries={"max_attempts": 1}))
    if token:
        def bearer(request, **_):  # after signing: kilnd authenticates bearer tokens, not SigV4
            request.headers["Authorization"] = "Bearer " + token
        client.meta.events.register("before-send.lambda", bearer)
    return client


def tenant_check(endpoint, image, token):
    client = make_client(endpoint, token)
    made = client.create_function(FunctionName="mine", PackageType="Image", Code={"ImageUri": image}, Role=ROLE)
    arn = made["FunctionArn"]
    assert arn.startswith("arn:aws:lambda:local:") and ":000000000000:" not in arn, arn
    assert [f["FunctionArn"] for f in client.list_functions()["Functions"]] == [arn]
    try:
        make_client(endpoint).list_functions()
        raise AssertionError("listed without the token")
    except botocore.exceptions.ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 401, e.response
    client.delete_function(FunctionName="mine")
    print("boto3 with a tenant's token:", arn, "; without it: 401")


def main(endpoint, image):
    client = make_client(endpoint)
    role = ROLE

    def create(name, **extra):
        return client.create_function(FunctionName=name, PackageType="Image", Code={"ImageUri": image},
                                      Role=role, **extra)

    made = create("py1", MemorySize=512, ImageConfig={"Command": ["app.handler"]},
                  Environment={"Variables": {"STAGE": "boto3"}})
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201, made
    assert made["FunctionArn"] == "arn:aws:lambda:local:000000000000:function:py1", made
    client.get_waiter("function_active_v2").wait(FunctionName="py1", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    got = client.get_function(FunctionName="py1")
    conf = got["Configuration"]
    assert conf["State"] == "Active" and conf["LastUpdateStatus"] == "Successful", conf
    assert conf["MemorySize"] == 512 and conf["Environment"]["Variables"] == {"STAGE": "boto3"}, conf
    assert conf["ImageConfigResponse"]["ImageConfig"]["Command"] == ["app.handler"], conf
    assert got["Code"]["ImageUri"] == image, got
    print("boto3 get_function:", conf["FunctionName"], conf["State"], conf["LastUpdateStatus"],
          got["Code"]["ResolvedImageUri"])

    for name in ("py2", "py3"):
        create(name)
    pages = client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
    names = [[f["FunctionName"] for f in page["Functions"]] for page in pages]
    assert names == [["py1", "py2"], ["py3"]], names
    print("boto3 list_functions pages:", names)

    updated = client.update_function_configuration(FunctionName="py1", MemorySize=2048, Timeout=60)
    assert updated["MemorySize"] == 2048 and updated["Timeout"] == 60, updated
    client.get_waiter("function_updated_v2").wait(FunctionName="py1", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert client.get_function_configuration(FunctionName="py1")["MemorySize"] == 2048
    print("boto3 update_function_configuration: MemorySize", updated["MemorySize"], "Timeout", updated["Timeout"])

    errors = []
    for call, exception in (
            (lambda: client.get_function(FunctionName="nope"), client.exceptions.ResourceNotFoundException),
            (lambda: client.update_function_configuration(FunctionName="py1", MemorySize=20000),
             client.exceptions.InvalidParameterValueException),
            (lambda: create("py1"), client.exceptions.ResourceConflictException)):
        try:
            call()
        except exception as e:
            errors.append(e.response["Error"]["Code"])
            assert e.response["ResponseMetadata"]["RequestId"], e.response
        else:
            raise AssertionError("no %s" % exception.__name__)
    print("boto3 errors:", errors)

    for name in ("py1", "py2", "py3"):
        assert client.delete_function(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.list_functions()["Functions"] == []
    print("boto3: ok")


if __name__ == "__main__":
    if len(sys.argv) > 3:
        tenant_check(*sys.argv[1:4])
    else:
        main(sys.argv[1], sys.argv[2])
