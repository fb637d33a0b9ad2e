"""adaptsim: should this DNN's edge/cloud split adapt as conditions change?

Packages: ``models`` (zoo, partition points, exact splitting; needs TensorFlow),
``store`` (the measurement schema), ``importers`` (published data in),
``calibration`` (measurements -> latency models), ``study`` (best points and gains),
``simulator`` (SimPy replay of traces with split policies), ``report`` (tables, plots).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
