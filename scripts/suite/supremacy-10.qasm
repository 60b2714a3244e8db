OPENQASM 2.0;
include "qelib1.inc";
qreg q[10];
creg m[10];





h q[0];
h q[1];
h q[2];
h q[3];
h q[4];
h q[5];
h q[6];
h q[7];
h q[8];
h q[9];
cz q[5],q[6];
cz q[1],q[2];
rz(pi*0.25) q[0];
rz(pi*0.25) q[3];
rz(pi*0.25) q[4];
rz(pi*0.25) q[7];
rz(pi*0.25) q[8];
rz(pi*0.25) q[9];
cz q[4],q[5];
cz q[0],q[1];
cz q[8],q[9];
rx(pi*0.5) q[2];
rx(pi*0.5) q[6];
h q[0];
h q[1];
h q[2];
h q[3];
h q[4];
h q[5];
h q[6];
h q[7];
h q[8];
h q[9];

