from cpucompat.v1 import profile_pb2 as _profile_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetProfileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile", "raw", "host_id", "cluster", "agent_version")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    profile: _profile_pb2.ProcessorProfile
    raw: _profile_pb2.RawCapture
    host_id: str
    cluster: str
    agent_version: str
    def __init__(self, profile: _Optional[_Union[_profile_pb2.ProcessorProfile, _Mapping]] = ..., raw: _Optional[_Union[_profile_pb2.RawCapture, _Mapping]] = ..., host_id: _Optional[str] = ..., cluster: _Optional[str] = ..., agent_version: _Optional[str] = ...) -> None: ...

class ProbeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProbeResponse(_message.Message):
    __slots__ = ("profile", "raw", "changed", "previous_fingerprint")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    profile: _profile_pb2.ProcessorProfile
    raw: _profile_pb2.RawCapture
    changed: bool
    previous_fingerprint: str
    def __init__(self, profile: _Optional[_Union[_profile_pb2.ProcessorProfile, _Mapping]] = ..., raw: _Optional[_Union[_profile_pb2.RawCapture, _Mapping]] = ..., changed: _Optional[bool] = ..., previous_fingerprint: _Optional[str] = ...) -> None: ...
