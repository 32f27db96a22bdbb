"""What the tests share: builders of test images and families, local servers, the
simulated Ubuntu archive, and the host-tool requirement (``requires_tool``)."""
